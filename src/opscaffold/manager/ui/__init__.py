"""The web console: the built React app, served by the Manager at `/`."""
