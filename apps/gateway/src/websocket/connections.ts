import type { KeyLookup } from '../auth/key-cache';

/** One open (or opening) proxied WebSocket connection, as the registry sees it. */
export type WsConnection = {
  /** The key's hash for keyed APIs; null when no key authenticated it (open or JWT APIs). */
  readonly keyHash: string | null;
  /** Whether the key, as just looked up again, still allows this connection. */
  stillAllowed(lookup: KeyLookup): boolean;
  /** Sends close frames both ways and drops the connection. */
  close(code: number, reason: string): void;
};

/**
 * The WebSocket connections open in this process, by key: the per-key concurrent-connection
 * limit counts here (per process, like the fallback limiter: N processes allow N × the limit),
 * and a revoked or changed key's connections are found here to be closed (ADR 0026).
 */
export class WsConnections {
  private readonly byKey = new Map<string, Set<WsConnection>>();
  private readonly all = new Set<WsConnection>();

  get size(): number {
    return this.all.size;
  }

  count(keyHash: string): number {
    return this.byKey.get(keyHash)?.size ?? 0;
  }

  /** Registers a connection unless its key already holds `max` (0 = no limit); false = refused. */
  tryAdd(conn: WsConnection, max: number): boolean {
    const hash = conn.keyHash;
    if (hash !== null) {
      let set = this.byKey.get(hash);
      if (max > 0 && set !== undefined && set.size >= max) return false;
      if (set === undefined) this.byKey.set(hash, (set = new Set()));
      set.add(conn);
    }
    this.all.add(conn);
    return true;
  }

  delete(conn: WsConnection): void {
    this.all.delete(conn);
    const hash = conn.keyHash;
    if (hash === null) return;
    const set = this.byKey.get(hash);
    if (set === undefined) return;
    set.delete(conn);
    if (set.size === 0) this.byKey.delete(hash);
  }

  /** A revoked key: every connection it holds is closed now. */
  closeKey(keyHash: string, code: number, reason: string): number {
    const set = this.byKey.get(keyHash);
    if (set === undefined) return 0;
    const conns = [...set];
    for (const c of conns) c.close(code, reason);
    return conns.length;
  }

  /** Keys that hold open connections (to look up again after a change or a resubscription). */
  keyHashes(): string[] {
    return [...this.byKey.keys()];
  }

  /** Closes the connections of `keyHash` that its record, as looked up now, no longer allows. */
  recheck(keyHash: string, lookup: KeyLookup, code: number, reason: string): void {
    const set = this.byKey.get(keyHash);
    if (set === undefined) return;
    for (const c of [...set]) if (!c.stillAllowed(lookup)) c.close(code, reason);
  }

  closeAll(code: number, reason: string): void {
    for (const c of [...this.all]) c.close(code, reason);
  }
}
