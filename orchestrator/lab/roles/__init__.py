"""Lab role programs: small stdlib-only scripts run as real processes inside the lab's namespaces.

They are run by copies of the Python interpreter installed under realistic names and paths, so they may import
nothing outside the standard library (the nameserver, run by the project's own interpreter, may use dnspython).
"""
