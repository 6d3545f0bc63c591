"""The study on Slurm: the job graph and job scripts (`graph`, pure), what one job runs (`job`), and
submitting, watching and cancelling through sbatch/squeue/scancel (`submit`).

May import: every stage below cli, and the rest of study."""
