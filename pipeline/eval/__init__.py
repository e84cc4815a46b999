"""Measuring quality: COCO metrics on image sets, rendered moving-camera clips, mixed scenes.

Imports the processing stages it measures; nothing in the processing path imports it.
"""
