package inputfile

// OpenChecked is the open that follows the stat check, for a test to reach it alone.
var OpenChecked = open

// ReadAllFrom is the bounded, cancellable read loop, for a test to drive with any reader.
var ReadAllFrom = readAll
