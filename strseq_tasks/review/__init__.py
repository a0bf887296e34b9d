"""The review page: the review queue in a browser (``strseq review serve``)."""
