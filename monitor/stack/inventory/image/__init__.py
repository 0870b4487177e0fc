"""Container images as inventories: the Python packages an image's layers install, read without
Docker and without extracting anything to disk (`layers`), from a registry (`registry`), an OCI
layout directory or a `docker save` tarball (`archives`)."""
