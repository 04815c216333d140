// Package caldav serves calendars, task lists and address books over
// CalDAV (RFC 4791) and CardDAV (RFC 6352) for iPhone, Mac, DAVx5,
// Thunderbird and vdirsyncer, over kreide's store.
//
// # URLs
//
//	<prefix>                                   PROPFIND: current-user-principal
//	<prefix>principals/<login>/                the principal: home sets
//	<prefix>calendars/<login>/                 calendar home
//	<prefix>calendars/<login>/<slug>/          a calendar or task list
//	<prefix>calendars/<login>/<slug>/<name>    an event or task (.ics)
//	<prefix>addressbooks/<login>/<slug>/<name> a contact (.vcf)
//
// A new account has calendars/<login>/calendar/ (VEVENT), .../tasks/
// (VTODO) and addressbooks/<login>/contacts/. A path naming another login
// is refused (403) before anything is looked up: a user reaches only their
// own data (invariant 4). The router mounts the handler at the prefix behind
// davauth.Middleware and redirects /.well-known/caldav and
// /.well-known/carddav to the prefix.
//
// # Why not go-webdav's caldav.Handler
//
// go-webdav's caldav and carddav servers (v0.6.0) were read first. Their
// Backend interface would fit the store, but the handlers lack most of what
// clients need and their extension points are in an internal package: no
// PROPPATCH (501), no sync-collection, no getctag or sync-token, no
// calendar-color, fixed property sets per resource, no quota properties, no
// MKCALENDAR properties, PUT errors without the RFC preconditions and no
// UID conflict check, calendars re-encoded on GET (the ETag would not match
// the bytes), Depth: infinity accepted, responses built in memory, XML with
// DOCTYPE accepted, and time-range matching that ignores durations, EXDATE
// lists, RDATE and overrides; carddav.Match compares only a property's
// first value, case-sensitively, and ignores param-filter. Wrapping them
// would have meant intercepting every method. So this package
// has its own small DAV core (xml.go, propfind.go, proppatch.go), uses
// go-ical and go-vcard to parse, rrule-go for recurrence rules, and
// go-webdav's clients in its tests.
//
// # What is implemented
//
//   - Discovery: current-user-principal on every resource, principal-URL,
//     calendar-home-set, addressbook-home-set, calendar-user-address-set.
//   - PROPFIND with Depth 0 and 1 (Depth: infinity gets 403
//     propfind-finite-depth; no Depth header means 1), allprop, propname.
//   - PROPPATCH of displayname, calendar-description, addressbook-description,
//     Apple's calendar-color and calendar-order, and any dead property, all
//     or nothing; protected properties get 403 and the others 424.
//   - MKCALENDAR and extended MKCOL (RFC 5689) with initial properties and
//     supported-calendar-component-set; DELETE of collections.
//   - getctag (CalendarServer), sync-token and sync-collection (RFC 6578)
//     from the account's change log; quota-available-bytes and
//     quota-used-bytes (RFC 4331).
//   - PUT with If-Match / If-None-Match (412), validation before storing:
//     valid-calendar-data, valid-calendar-object-resource,
//     supported-calendar-component, no-uid-conflict (409, with the href of
//     the other resource), supported-calendar-data / supported-address-data
//     (415), valid-address-data, max-resource-size (413); over quota gives
//     507 quota-not-exceeded. Content is stored byte for byte.
//   - calendar-query with comp-filter, prop-filter, param-filter, text-match
//     and time-range; time ranges expand recurrences (RRULE, RDATE, EXDATE,
//     RECURRENCE-ID overrides) for VEVENT and VTODO and follow RFC 4791 9.9
//     for tasks; calendar-data with expand and with comp/prop selection;
//     calendar-multiget; free-busy-query; addressbook-query (prop-filter,
//     param-filter, text-match with match types and collations, limit);
//     addressbook-multiget with address-data prop selection.
//
// Performance (BenchmarkCalendarQuery, 10,000 events of which 1,000 are
// weekly series, 2-core machine): a week's calendar-query for ETags costs
// about 18 ms of CPU, of which ~4 ms is opening the 10,000 sealed summaries;
// the rest is expanding the series that touch the week. A delta
// sync-collection costs ~0.13 ms, an initial one of 10,000 members ~60 ms.
//
// Not implemented: scheduling (calendar-auto-schedule is not advertised),
// sharing, ACL changes, COPY/MOVE, LOCK, limit-recurrence-set, GET of a
// whole collection as one .ics, DAV:limit on sync-collection (all changes
// come at once), time ranges on VALARM (treated as matching),
// RANGE=THISANDFUTURE overrides (treated as single overrides), Windows time
// zone names (a TZID the zone database does not know is read with the
// calendar's VTIMEZONE standard offset, and such events are always parsed
// at query time).
//
// # XML safety
//
// Request bodies are limited to 1 MiB; a DOCTYPE (and so any entity
// declaration) is refused, as is nesting deeper than 50 elements.
// iCalendar and vCard data nested deeper than 20 components is refused
// before it reaches the recursive parser.
package caldav
