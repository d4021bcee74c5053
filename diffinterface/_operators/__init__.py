"""One module per operator: public functions, then the generic kernel builder."""
