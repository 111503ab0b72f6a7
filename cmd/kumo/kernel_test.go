package main

import "testing"

// What a console runs on Enter, and what it waits for more of.
func TestCodeCompleteness(t *testing.T) {
	for _, tc := range []struct{ code, status, indent string }{
		{"x = 1", "complete", ""},
		{"print(x)\n", "complete", ""},
		{"for i in range(3):", "incomplete", "    "},
		{"for i in range(3):\n    print(i)", "incomplete", "    "},
		{"for i in range(3):\n    print(i)\n", "complete", ""},
		{"for i in range(3):\n    print(i)\n    ", "complete", ""},
		{"x = [1,", "incomplete", ""},
		{"f(1,\n  2", "incomplete", "  "},
		{"x = = 1", "invalid", ""},
		{"", "complete", ""},
	} {
		status, indent := codeCompleteness(tc.code)
		if status != tc.status || indent != tc.indent {
			t.Errorf("codeCompleteness(%q) = %q %q, want %q %q", tc.code, status, indent, tc.status, tc.indent)
		}
	}
}
