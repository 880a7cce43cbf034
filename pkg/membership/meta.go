package membership

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Role of a member.
type Role string

const (
	// RoleCoordinator is the single member that owns a run.
	RoleCoordinator Role = "coordinator"
	// RoleWorker is a member that holds a model replica and takes part in the ring.
	RoleWorker Role = "worker"
)

// MaxMetaSize is the largest encoded Meta that memberlist carries (its MetaMaxSize).
const MaxMetaSize = memberlist.MetaMaxSize

// Meta is what every member advertises through gossip. It is encoded as JSON with
// one-letter keys (see MarshalBinary) and must fit in MaxMetaSize bytes.
type Meta struct {
	// Role says what the member does in the run.
	Role Role
	// GRPCAddr is the host:port where the member serves gRPC.
	GRPCAddr string
	// Protocol is the ringtrain protocol version the member speaks.
	Protocol uint32
	// ID is a stable identifier of the member (the default node name).
	ID string
}

// metaWire is the on-the-wire form of Meta: short keys keep it well under the limit.
type metaWire struct {
	Role     Role   `json:"r"`
	GRPCAddr string `json:"g,omitempty"`
	Protocol uint32 `json:"p"`
	ID       string `json:"i,omitempty"`
}

// MarshalBinary encodes m compactly. It fails when the encoding exceeds MaxMetaSize,
// naming the size of the fields that can be long.
func (m Meta) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(metaWire(m))
	if err != nil {
		return nil, fmt.Errorf("membership: encode meta: %w", err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("membership: encoded meta is %d bytes, limit %d (GRPCAddr %d bytes, ID %d bytes, Role %d bytes)",
			len(b), MaxMetaSize, len(m.GRPCAddr), len(m.ID), len(m.Role))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary produced. Unknown keys are ignored so
// that later versions may add fields.
func (m *Meta) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("membership: decode meta: empty")
	}
	if len(b) > MaxMetaSize {
		return fmt.Errorf("membership: decode meta: %d bytes, limit %d", len(b), MaxMetaSize)
	}
	var w metaWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("membership: decode meta (%d bytes): %w", len(b), err)
	}
	*m = Meta(w)
	return nil
}
