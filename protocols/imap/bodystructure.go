package imap

import (
	"github.com/emersion/go-imap/v2"

	"kreide/store/message"
)

// envelope converts the cached envelope for ENVELOPE (RFC 9051 7.5.2).
// message.Address already uses IMAP's group markers.
func envelope(e *message.Envelope) *imap.Envelope {
	if e == nil {
		return &imap.Envelope{}
	}
	return &imap.Envelope{
		Date:      e.Date,
		Subject:   e.Subject,
		From:      addresses(e.From),
		Sender:    addresses(e.Sender),
		ReplyTo:   addresses(e.ReplyTo),
		To:        addresses(e.To),
		Cc:        addresses(e.Cc),
		Bcc:       addresses(e.Bcc),
		InReplyTo: e.InReplyTo,
		MessageID: e.MessageID,
	}
}

func addresses(in []message.Address) []imap.Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]imap.Address, len(in))
	for i, a := range in {
		out[i] = imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
	}
	return out
}

// bodyStructure converts the cached MIME structure for BODYSTRUCTURE and
// BODY (RFC 9051 7.5.2), always with the extension data (imapserver drops
// it for BODY).
func bodyStructure(p *message.Part) imap.BodyStructure {
	if p.IsMultipart() {
		mp := &imap.BodyStructureMultiPart{
			Subtype: p.Subtype,
			Extended: &imap.BodyStructureMultiPartExt{
				Params:      p.Params,
				Disposition: disposition(p),
				Language:    p.Language,
				Location:    p.Location,
			},
		}
		for _, c := range p.Children {
			mp.Children = append(mp.Children, bodyStructure(c))
		}
		return mp
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        p.Type,
		Subtype:     p.Subtype,
		Params:      p.Params,
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        uint32(min(p.Size(), 1<<32-1)),
		Extended: &imap.BodyStructureSinglePartExt{
			Disposition: disposition(p),
			Language:    p.Language,
			Location:    p.Location,
		},
	}
	switch {
	case p.IsMessage():
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      envelope(p.Envelope),
			BodyStructure: bodyStructure(p.Children[0]),
			NumLines:      p.Lines,
		}
	case p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global"):
		// An embedded message the parser could not descend into: the
		// grammar of message/rfc822 needs an envelope and a structure, so
		// offer it as an opaque attachment instead.
		sp.Type, sp.Subtype = "application", "octet-stream"
	case p.Type == "text":
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	return sp
}

func disposition(p *message.Part) *imap.BodyStructureDisposition {
	if p.Disposition == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: p.Disposition, Params: p.DispositionParams}
}
