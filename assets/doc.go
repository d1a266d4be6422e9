// Package assets holds what Custos embeds in its binary besides code: the application icon
// (Icon) and the root key ceremony's script, the words the administrator reads aloud and what
// the witness checks at each step (Script, keyed by run.Step.Script). The fonts of the PDF
// records are in assets/fonts.
package assets
