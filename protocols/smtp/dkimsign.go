package smtp

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// signedHeaders are the fields DKIM signatures cover (RFC 6376 section
// 5.4.1). The identity fields are named twice ("over-signing"), so a field of
// that name added in transit breaks the signature instead of riding on it.
var signedHeaders = []string{
	"From", "From", "Reply-To", "Reply-To", "Subject", "Subject", "Date", "Date",
	"To", "To", "Cc", "Cc", "Message-ID", "Message-ID", "Sender", "Sender",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "Content-Language", "Content-Disposition",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc", "Resent-Message-ID",
	"Auto-Submitted",
}

// dkimSign signs the message that open returns with every DKIM key of
// domain (Ed25519 and RSA-2048, RFC 8463 and RFC 6376; keys are created on
// first use) and returns the DKIM-Signature fields to put in front of it.
// Both signers read the message once, together.
func (s *Server) dkimSign(ctx context.Context, domain string, open func() (io.Reader, error)) ([]byte, error) {
	keys, err := s.o.Dir.DKIMKeys(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("dkim keys of %s: %w", domain, err)
	}
	signers := make([]*dkim.Signer, 0, len(keys))
	writers := make([]io.Writer, 0, len(keys))
	for _, k := range keys {
		sg, err := dkim.NewSigner(&dkim.SignOptions{
			Domain:                 k.Domain,
			Selector:               k.Selector,
			Signer:                 k.Signer,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             signedHeaders,
		})
		if err != nil {
			return nil, err
		}
		signers = append(signers, sg)
		writers = append(writers, sg)
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	_, copyErr := io.Copy(io.MultiWriter(writers...), r)
	var b strings.Builder
	for _, sg := range signers {
		if err := sg.Close(); err != nil && copyErr == nil {
			copyErr = err
		}
		if copyErr == nil {
			b.WriteString(sg.Signature())
		}
	}
	if copyErr != nil {
		return nil, fmt.Errorf("dkim sign: %w", copyErr)
	}
	return []byte(b.String()), nil
}
