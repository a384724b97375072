"""Video: files with their sound, raw frame streams, temporal smoothing, test clips."""
