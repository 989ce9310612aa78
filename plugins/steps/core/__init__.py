"""What several pipelines share: output checks, atomic files, the warehouse loader, identifiers,
settings and the Telegram notifier. Kept small: a helper used by one pipeline lives with it."""
