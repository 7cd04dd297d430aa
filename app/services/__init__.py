"""The imperative shell: one async function per use case, one transaction each."""
