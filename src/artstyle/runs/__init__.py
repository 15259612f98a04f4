"""Runs, from files to files: a job and a batch (:mod:`~artstyle.runs.jobs`), the record beside
each output (:mod:`~artstyle.runs.record`), the state that resumes a stopped run
(:mod:`~artstyle.runs.state`), progress and Ctrl-C (:mod:`~artstyle.runs.console`,
:mod:`~artstyle.runs.signals`), the ETA (:mod:`~artstyle.runs.timing`), video
(:mod:`~artstyle.runs.video`) and Ray (:mod:`~artstyle.runs.cluster`). It reads and writes files;
the wings below it do not."""
