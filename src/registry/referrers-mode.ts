// Whether a registry has the OCI referrers API, learned once per registry and then trusted for the rest
// of the run: from the first referrers request it answers (200: the API; 404 or another "not supported":
// the fallback tag schema), or from a manifest PUT answered with `OCI-Subject` (the API). Kept apart from
// the client so that it can move into the per-registry profile (registry/profile) as it is.

export type ReferrersMode = 'api' | 'tag-schema';

export class ReferrersModes {
  private readonly modes = new Map<string, ReferrersMode>();
  private readonly probes = new Map<string, Promise<unknown>>();

  /** What is known about `registry`; undefined until a request has told. */
  get(registry: string): ReferrersMode | undefined {
    return this.modes.get(registry);
  }

  /** Record what a registry showed. The first answer stands: the registry is not asked again. */
  learn(registry: string, mode: ReferrersMode): void {
    if (!this.modes.has(registry)) this.modes.set(registry, mode);
  }

  /**
   * Run `ask`, a request that may teach the mode. While the mode is unknown only one such request per
   * registry is in flight; the others wait for its answer, so a run with many manifests probes a registry
   * once, not once per manifest. When the first request could not tell (a repository that does not
   * exist yet), the next one asks again.
   */
  async once<T>(registry: string, ask: () => Promise<T>): Promise<T> {
    for (;;) {
      if (this.modes.has(registry)) return ask();
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
