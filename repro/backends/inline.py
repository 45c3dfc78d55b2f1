"""The in-process backend: each group trained in this process, one at a time (the CPU default, and tests)."""
from __future__ import annotations

from repro.profiles import Profile
from repro.store import Store
from repro.worker import train_group


class Inline:
    """Train each group in this process, one at a time (the CPU default, and tests)."""

    slots = split_for = 1

    def __init__(self, store: Store, profile: Profile, data_root: str | None, device: str | None,
                 stop_at: float | None = None):
        self.store, self.profile, self.data_root, self.device = store, profile, data_root, device
        self.stop_at = stop_at
        self.bar, self.done = None, {}

    def submit(self, group):
        label = f"| {group[0].split}/{group[0].target} r{group[0].replicate}: {len(group)} nets"

        def tick(i, total):
            self.bar.update(running=len(group), groups=1, current=f"{label} {100 * i // total}%")

        handle = len(self.done)
        self.done[handle] = train_group(group, str(self.store.root), self.profile, self.data_root, self.device,
                                        tick, self.stop_at)
        return handle

    def wait(self, handles, timeout):
        return [(h, self.done.pop(h)) for h in handles]

    def describe(self, handles) -> str:
        return ""

    def stop(self):
        pass  # the group trains in this process, which has the stop request itself

    def close(self):
        pass
