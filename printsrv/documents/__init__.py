"""Documents: the document log and its cache, the content-addressed PDF store and its
retention, and conversion (anything in -> PDF) in `convert/`."""
