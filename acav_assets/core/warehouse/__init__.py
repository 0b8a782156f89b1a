"""The Delta Lake warehouse: table schemas and I/O, selection lineage, reports over the tables."""
