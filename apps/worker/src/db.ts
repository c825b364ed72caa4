import postgres, { type Sql } from 'postgres';

/**
 * The ingestion path's own connection pool (postgres.js, raw SQL). Prisma stores DateTime in
 * `timestamp(3)` columns as UTC; this client reads and writes them as UTC too, whatever the
 * process's time zone.
 */
export function createSql(databaseUrl: string, max = 10): Sql {
  return postgres(databaseUrl, {
    max,
    onnotice: () => {},
    connection: { TimeZone: 'UTC' },
    types: {
      timestampUtc: {
        to: 1114,
        from: [1114],
        serialize: (d: Date | string) => (d instanceof Date ? d.toISOString() : d),
        parse: (s: string) => new Date(`${s.replace(' ', 'T')}Z`),
      },
    },
  }) as unknown as Sql;
}
