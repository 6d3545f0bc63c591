"""data/converters"""
