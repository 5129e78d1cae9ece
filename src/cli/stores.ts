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

/** With `debug`, every blob file a layout opens for reading is traced, like HTTP requests are. */
export function openStores(client: RegistryClient, out: Output, debug?: boolean): Stores {
  const layouts = new LayoutStore(
    debug ? { onRead: (where) => out.warn(`[debug] layout read ${where}`) } : {},
  );
  return { store: new RoutedStore(client, layouts), layouts };
}
