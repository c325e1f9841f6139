"""A local, stateful Convio / Luminate Online Constituent API (SRConsAPI)."""

from target_convio.emulator.faults import Faults
from target_convio.emulator.server import Emulator
from target_convio.emulator.site import Field, Site, SiteError

__all__ = ["Emulator", "Faults", "Field", "Site", "SiteError"]
