"""The platform every domain of the code location shares: resources, partitions, the catalog,
data versions, run-config derivation, metadata formatting, progress, executors and the helpers
every step uses. Domains import from here, never from each other's modules."""
