"""From finding to the SIEM in use: Sigma rules for findings and hunt packs, their conversion with pySigma
backends (SPL, KQL, ES|QL, EQL, LogScale, SQL), pivots, and the ATT&CK data pySigma validates tags against."""
