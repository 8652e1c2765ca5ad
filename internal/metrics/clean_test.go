package metrics

import "testing"

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "American Robin", "American Robin"},
		{"trim and collapse", "  American \t\n Robin  ", "American Robin"},
		{"unicode spaces", "\u00a0American\u2003Robin\u3000", "American Robin"},
		{"end_of_text", "Dog<|end_of_text|>Cat", "Dog"},
		{"eot_id", "Dog <|eot_id|> trailing", "Dog"},
		{"s close", "Dog</s></s>", "Dog"},
		{"im_end", "Dog<|im_end|>\n", "Dog"},
		{"endoftext", "Dog<|endoftext|>x", "Dog"},
		{"earliest token wins", "A</s>B<|eot_id|>C", "A"},
		{"earliest token wins reversed", "A<|eot_id|>B</s>C", "A"},
		{"only token", "<|eot_id|>", ""},
		{"time span", "#0.00s - 10.00s#: Dog", "Dog"},
		{"time span no spaces", "#0.00s-10.00s#:Dog", "Dog"},
		{"time span no unit no colon", "#0 - 10# Dog", "Dog"},
		{"time span leading space", "   #1.5s - 2.5s#: Dog", "Dog"},
		{"stacked time spans", "#0.00s - 1.00s#: #1.00s - 2.00s#: Dog", "Dog"},
		{"time span only", "#0.00s - 10.00s#:", ""},
		{"time span after eot ignored", "Dog</s>#0.00s - 10.00s#: Cat", "Dog"},
		{"time span not at start kept", "Dog #0.00s - 10.00s#: Cat", "Dog #0.00s - 10.00s#: Cat"},
		{"hash label kept", "#1 Dog", "#1 Dog"},
		{"empty", "", ""},
		{"spaces only", " \t\n", ""},
		{"case kept", "dOG", "dOG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Clean(tc.in); got != tc.want {
				t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
