package membership

import (
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
	}{
		{"coordinator", Meta{Role: RoleCoordinator, GRPCAddr: "10.0.0.1:7000", Protocol: 1, ID: "coord-0"}},
		{"worker ipv6", Meta{Role: RoleWorker, GRPCAddr: "[fd00::1]:7001", Protocol: 42, ID: "w-7"}},
		{"empty optional fields", Meta{Role: RoleWorker}},
		{"max protocol", Meta{Role: RoleWorker, Protocol: ^uint32(0)}},
		{"unicode id", Meta{Role: RoleWorker, ID: "wörker-é"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.meta.MarshalBinary()
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if len(b) > MaxMetaSize {
				t.Fatalf("encoded %d bytes > %d", len(b), MaxMetaSize)
			}
			var got Meta
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			if got != tc.meta {
				t.Fatalf("round trip: got %+v, want %+v (wire %s)", got, tc.meta, b)
			}
		})
	}
}

func TestMetaSizeLimit(t *testing.T) {
	base := Meta{Role: RoleWorker, Protocol: 1, ID: "w"}
	enc, err := base.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	room := MaxMetaSize - len(enc) - len(`,"g":""`) // bytes left for a GRPCAddr
	tests := []struct {
		name    string
		addrLen int
		wantErr bool
	}{
		{"exactly at limit", room, false},
		{"one byte over", room + 1, true},
		{"far over", 4 * MaxMetaSize, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.GRPCAddr = strings.Repeat("a", tc.addrLen)
			b, err := m.MarshalBinary()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error for %d-byte encoding", len(b))
				}
				if !strings.Contains(err.Error(), "GRPCAddr") || !strings.Contains(err.Error(), "limit 512") {
					t.Fatalf("error does not name the field and limit: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(b) != MaxMetaSize {
				t.Fatalf("encoded %d bytes, want exactly %d", len(b), MaxMetaSize)
			}
		})
	}
}

func TestMetaDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"not json", []byte("role=worker"), "decode meta (11 bytes)"},
		{"wrong type", []byte(`{"r":"worker","p":"one"}`), "decode meta"},
		{"too long", []byte(`{"r":"` + strings.Repeat("x", MaxMetaSize) + `"}`), "limit 512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Meta
			err := m.UnmarshalBinary(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
	var m Meta
	if err := m.UnmarshalBinary([]byte(`{"r":"worker","p":3,"future":true}`)); err != nil || m.Protocol != 3 {
		t.Fatalf("unknown keys must be ignored: %+v, %v", m, err)
	}
}

func TestStartConfigErrors(t *testing.T) {
	ok := Meta{Role: RoleWorker, Protocol: 1, ID: "w"}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"meta too long", Config{BindAddr: "127.0.0.1:0", Meta: Meta{Role: RoleWorker, ID: "w", GRPCAddr: strings.Repeat("h", 600) + ":1"}}, "GRPCAddr 602 bytes"},
		{"no name", Config{BindAddr: "127.0.0.1:0", Meta: Meta{Role: RoleWorker}}, "Name and Meta.ID are both empty"},
		{"no role", Config{BindAddr: "127.0.0.1:0", Meta: Meta{ID: "w"}}, "Meta.Role is empty"},
		{"bad key", Config{BindAddr: "127.0.0.1:0", Meta: ok, SecretKey: []byte("short")}, "SecretKey is 5 bytes"},
		{"bind without port", Config{BindAddr: "127.0.0.1", Meta: ok}, `BindAddr "127.0.0.1"`},
		{"bind host name", Config{BindAddr: "localhost:0", Meta: ok}, "must be an IP address"},
		{"bad advertise", Config{BindAddr: "127.0.0.1:0", Advertise: "1.2.3.4:x", Meta: ok}, `Advertise "1.2.3.4:x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Start(t.Context(), tc.cfg)
			if err == nil {
				_ = m.Shutdown()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
