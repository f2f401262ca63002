"""A tenant's directory: hotlines, departments, users and extensions."""
