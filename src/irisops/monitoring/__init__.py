"""Reading what the API recorded: the inference log, the monitoring report, live evidence."""
