"""Apache Beam: the removal pipeline as a Beam pipeline, with its RunInference model handler."""
