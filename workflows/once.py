"""Each update once, across a continue-as-new.

A client whose update raced the run's continuation can be told the update was aborted although the old
run accepted and completed it; it sends the same update (the same id) again, and the new run, which never
saw that id, would apply it a second time (an offer twice in the trail, the chaos of thirty offers at once
showed it). So a complaint's run remembers the ids of the updates it handled and hands them to the run it
continues as; a handler that meets an id already handled answers with the complaint as it stands and does
nothing.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.common import ComplaintWorkflow


class OncePerUpdate(ComplaintWorkflow):
    _handled_updates: set[str]
    """The ids of the updates this run handled, and those the run it continues handed over."""

    def _handled_before(self) -> bool:
        """Whether the update being handled was handled already, here or by the run this one continues;
        notes it as handled otherwise."""
        update = workflow.current_update_info()
        if update is None:
            return False
        if update.id in self._handled_updates:
            return True
        self._handled_updates.add(update.id)
        return False
