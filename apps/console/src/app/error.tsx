'use client';

export default function ErrorPage({ reset }: { error: Error; reset: () => void }) {
  return (
    <main className="mx-auto max-w-md px-6 py-24 text-center">
      <h1 className="text-2xl font-semibold">Something went wrong</h1>
      <p className="mt-2 text-sm text-slate-600">The error was logged. Try again, and if it keeps happening, contact support.</p>
      <button onClick={reset} className="mt-6 rounded-md bg-brand-600 px-3.5 py-2 text-sm font-medium text-white">
        Try again
      </button>
    </main>
  );
}
