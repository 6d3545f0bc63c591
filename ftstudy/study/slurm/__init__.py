"""study/slurm"""
