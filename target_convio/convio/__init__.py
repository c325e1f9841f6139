"""The Convio server Constituent API client: one call made, retried, paced and judged.

It imports nothing from the rest of target-convio, so it can be used without Singer
(docs/client.md).
"""
