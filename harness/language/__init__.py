"""The case language: case files read, checked against spec/ and parsed into immutable Cases."""
