"""data/decontam"""
