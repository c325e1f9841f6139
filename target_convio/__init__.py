"""target-convio: a Singer target for Convio / Blackbaud Luminate Online constituents."""
