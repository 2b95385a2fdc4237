"""A task that is none of the template's: weighted points, for the test kit's own tests."""
