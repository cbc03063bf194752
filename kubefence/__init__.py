"""kubefence's command line: the one place that knows policy/, analyzer/ and (later) enforcer/
and lab/. Everything here is argument parsing and printing; the work is done below."""
