"""Storage: the MLflow store client and the write path under every run: records, their
validation, the writer and its spool files, delivery, and sinks."""
