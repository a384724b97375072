"""Background removal over files and folders: jobs, the threaded folder pipeline, watch mode."""
