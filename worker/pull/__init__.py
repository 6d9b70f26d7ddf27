"""Pull sync: reads the portal through ``worker.portal`` module by module and
publishes the same events webhooks bring, so one consumer applies both. The
reader walks the portal as each module's spec says; the runner claims sync runs,
publishes what was read and moves the watermarks; the scheduler starts requested
runs, takes over dead ones and reconciles periodically."""

from worker.pull.runner import ProgressListener, PullRunner
from worker.pull.scheduler import SyncScheduler

__all__ = ["ProgressListener", "PullRunner", "SyncScheduler"]
