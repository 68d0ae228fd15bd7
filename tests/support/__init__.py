"""What tests share: processes, ports, waiting, faults, captures. No test imports another test
module; they import from here."""
