"""The ``verify`` command's parts: the runs it compares, what it suspects, and its report."""
