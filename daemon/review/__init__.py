"""The review station (``veil review``): a local web page to finish what the detector left uncertain."""
