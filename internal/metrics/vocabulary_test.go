package metrics

import (
	"reflect"
	"strings"
	"testing"
)

func TestNewVocabulary(t *testing.T) {
	v := NewVocabulary([]string{"b", "a", "b", "c", "a"})
	if got, want := v.Labels(), []string{"b", "a", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Labels() = %q, want %q", got, want)
	}
	got := v.Labels()
	got[0] = "mutated"
	if v.Labels()[0] != "b" {
		t.Error("Labels() exposes the internal slice")
	}
	if v.Len() != 3 || !v.Contains("c") || v.Contains("C") {
		t.Errorf("Len/Contains wrong: %d %v %v", v.Len(), v.Contains("c"), v.Contains("C"))
	}
}

func TestSnap(t *testing.T) {
	tests := []struct {
		name     string
		labels   []string
		answer   string
		want     string
		wantDist int
	}{
		{"empty vocabulary", nil, "dog", "", -1},
		{"exact", []string{"Dog", "Cat"}, "Cat", "Cat", 0},
		{"nearest", []string{"Dog", "Cat", "Cow"}, "Cats", "Cat", 1},
		{"case-sensitive", []string{"dog", "DOG"}, "DOG", "DOG", 0},
		{"case counts as edits", []string{"dog", "Dox"}, "Dog", "dog", 1},
		{"tie first wins", []string{"bat", "cat"}, "rat", "bat", 1},
		{"tie first wins reversed", []string{"cat", "bat"}, "rat", "cat", 1},
		{"empty answer snaps to shortest", []string{"Robin", "Owl", "Emu"}, "", "Owl", 3},
		{"runes not bytes", []string{"ééé", "abcd"}, "éé", "ééé", 1},
		{"always snaps however far", []string{"Dog"}, "something else entirely", "Dog", 21},
		{"later closer label found past skipped ones", []string{"aaaaaaaa", "bbbb", "abcd"}, "abce", "abcd", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, d := NewVocabulary(tc.labels).Snap(tc.answer)
			if got != tc.want || d != tc.wantDist {
				t.Errorf("Snap(%q) = %q, %d; want %q, %d", tc.answer, got, d, tc.want, tc.wantDist)
			}
		})
	}
}

func TestSnapLongAnswer(t *testing.T) {
	// Longer than a uint16 distance can hold.
	long := strings.Repeat("x", 70000)
	got, d := NewVocabulary([]string{"ab", "x"}).Snap(long)
	if got != "x" || d != 69999 {
		t.Errorf("Snap(70000×x) = %q, %d; want \"x\", 69999", got, d)
	}
}

func TestSplit(t *testing.T) {
	labels := []string{"Beluga, White Whale", "Orca", "White Whale", "Whale, Sperm, Big", "Sperm", "Big, Bad"}
	tests := []struct {
		name   string
		answer string
		want   []string
	}{
		{"empty", "", nil},
		{"commas only", " , ,, ", nil},
		{"plain", "Orca, Sperm", []string{"Orca", "Sperm"}},
		{"trims and drops empties", "  Orca ,, Sperm ,", []string{"Orca", "Sperm"}},
		{"comma label kept", "Beluga, White Whale", []string{"Beluga, White Whale"}},
		{"comma label among others", "Orca, Beluga, White Whale, Sperm", []string{"Orca", "Beluga, White Whale", "Sperm"}},
		{"comma label with loose spacing", "Orca ,  Beluga, White Whale  ,Sperm", []string{"Orca", "Beluga, White Whale", "Sperm"}},
		{"comma label twice", "Beluga, White Whale, Beluga, White Whale", []string{"Beluga, White Whale", "Beluga, White Whale"}},
		{"comma label not a whole part", "Big Beluga, White Whales", []string{"Big Beluga", "White Whales"}},
		{"case-sensitive", "beluga, white whale", []string{"beluga", "white whale"}},
		{"longest first", "Whale, Sperm, Big, Bad", []string{"Whale, Sperm, Big", "Bad"}},
		{"shorter label where longer does not fit", "Orca, Big, Bad", []string{"Orca", "Big, Bad"}},
		{"no commas", "Beluga White Whale", []string{"Beluga White Whale"}},
	}
	v := NewVocabulary(labels)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := v.Split(tc.answer); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Split(%q) = %q, want %q", tc.answer, got, tc.want)
			}
		})
	}
}

func TestSplitEmptyVocabulary(t *testing.T) {
	got := NewVocabulary(nil).Split("a, b,c")
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Split = %q, want %q", got, want)
	}
}
