"""The Manager's own settings as an administrator reads them (keys, retention, defaults)."""
