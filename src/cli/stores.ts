// The store a command copies with: the registry client for registries, the layout store for `oci:` and
// `oci-archive:` references, behind one interface.

import { LayoutStore } from '../layout/layout-store.js';
import { RoutedStore } from '../layout/routed-store.js';
import type { RegistryClient } from '../registry/client.js';
import type { Output } from './output.js';

export interface Stores {
  store: RoutedStore;
  layouts: LayoutStore;
}

/** End of a command: archives are written (when `commit`); one left staged is said so. */
export async function closeLayouts(layouts: LayoutStore, out: Output, commit: boolean): Promise<void> {
  for (const file of await layouts.close(commit)) {
    out.warn(
      `${file} was not written: what this run copied for it is staged beside it; run again to finish it`,
    );
  }
}

/** With `debug`, every blob file a layout opens for reading is traced, like HTTP requests are. */
export function openStores(client: RegistryClient, out: Output, debug?: boolean): Stores {
  const layouts = new LayoutStore(
    debug ? { onRead: (where) => out.warn(`[debug] layout read ${where}`) } : {},
  );
  return { store: new RoutedStore(client, layouts), layouts };
}
