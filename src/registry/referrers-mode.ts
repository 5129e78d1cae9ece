// Whether a registry has the OCI referrers API, learned once per registry and then trusted for the rest
// of the run: from the first referrers request it answers (200: the API; 404 or another "not supported":
// the fallback tag schema), or from a manifest PUT answered with `OCI-Subject` (the API). What was
// learned lives in the registry's profile (`profile.referrers`); this class keeps the first requests to a
// registry from all probing at once.

import type { ReferrersMode } from './profile/profile.js';

export type LearnedReferrersMode = Exclude<ReferrersMode, 'unknown'>;

/** Where the learned mode is kept: a registry's profile, or (for stores without profiles) a map. */
export type ReferrersModeHolder = (registry: string) => { referrers: ReferrersMode };

export class ReferrersModes {
  private readonly probes = new Map<string, Promise<unknown>>();
  private readonly holderOf: ReferrersModeHolder;

  constructor(holderOf?: ReferrersModeHolder) {
    const own = new Map<string, { referrers: ReferrersMode }>();
    this.holderOf =
      holderOf ??
      ((registry) => {
        let holder = own.get(registry);
        if (!holder) {
          holder = { referrers: 'unknown' };
          own.set(registry, holder);
        }
        return holder;
      });
  }

  /** What is known about `registry`; undefined until a request has told. */
  get(registry: string): LearnedReferrersMode | undefined {
    const mode = this.holderOf(registry).referrers;
    return mode === 'unknown' ? undefined : mode;
  }

  /** Record what a registry showed. The first answer stands: the registry is not asked again. */
  learn(registry: string, mode: LearnedReferrersMode): void {
    const holder = this.holderOf(registry);
    if (holder.referrers === 'unknown') holder.referrers = mode;
  }

  /**
   * Run `ask`, a request that may teach the mode. While the mode is unknown only one such request per
   * registry is in flight; the others wait for its answer, so a run with many manifests probes a registry
   * once, not once per manifest. When the first request could not tell (a repository that does not
   * exist yet), the next one asks again.
   */
  async once<T>(registry: string, ask: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.get(registry) !== undefined) return ask();
      const probing = this.probes.get(registry);
      if (!probing) break;
      await probing.catch(() => {});
    }
    const probe = ask();
    this.probes.set(registry, probe);
    try {
      return await probe;
    } finally {
      if (this.probes.get(registry) === probe) this.probes.delete(registry);
    }
  }
}
