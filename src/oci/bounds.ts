// Bounds on the shape of a manifest graph, whoever serves it: a registry could nest indexes without end
// or fan out to more manifests than any image has. Checked by the registry client where manifests enter
// and by the copy engine as it walks a graph.

/** Index inside index inside index...: deeper than this is refused. */
export const MAX_INDEX_DEPTH = 8;
/** Manifests in one image's graph (an index, its children, theirs), and children of one index. */
export const MAX_GRAPH_MANIFESTS = 10_000;
