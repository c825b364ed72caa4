import { lookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { classifyAddress } from '@tollgate/policy/addresses';

/** The error a refused upstream address fails its connection with (a connect failure: 502). */
export class TargetRefusedError extends Error {
  readonly code = 'ETARGETREFUSED';
  constructor(host: string, address: string) {
    super(`upstream ${host} resolves to ${address}, which this tenant may not reach`);
  }
}

/** Whether the tenant may reach this address (metadata never; private ranges when allowed). */
export function addressAllowed(address: string, allowPrivate: boolean): boolean {
  const cls = classifyAddress(address);
  return cls === 'public' || (cls === 'private' && allowPrivate);
}

/**
 * A DNS lookup for upstream connections that drops addresses the tenant may not reach: cloud
 * metadata always, private ranges unless allowed. Targets are checked when saved, but a name
 * can resolve elsewhere later (DNS rebinding); this runs on every new connection, so the address
 * dialled is the address checked.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: LookupOneOptions | LookupAllOptions, callback: (...args: unknown[]) => void) => {
    lookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err);
      const ok = addresses.filter((a) => addressAllowed(a.address, allowPrivate));
      if (ok.length === 0) return callback(new TargetRefusedError(hostname, addresses[0]?.address ?? 'nothing'));
      if ((options as LookupAllOptions).all) return callback(null, ok);
      return callback(null, ok[0]!.address, ok[0]!.family);
    });
  }) as LookupFunction;
}

/** undici's connector with the address check: IP literals are checked directly, names at lookup. */
export function guardedConnector(opts: buildConnector.BuildOptions, allowPrivate: boolean): buildConnector.connector {
  const connect = buildConnector({ ...opts, lookup: guardedLookup(allowPrivate) } as buildConnector.BuildOptions);
  return (options, callback) => {
    const host = options.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0 && !addressAllowed(host, allowPrivate)) {
      callback(new TargetRefusedError(host, host), null);
      return;
    }
    connect(options, callback);
  };
}
