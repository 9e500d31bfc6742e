"""The purple-team lab: a small fleet of network namespaces playing benign and malicious traffic for real.

Everything the lab sends stays inside the namespaces it creates (and loopback): no lab link ever touches the root
namespace, and the lab's addresses exist only inside its namespaces.
"""
